/** A one-line terminal progress bar (redrawn in place on a TTY, a few plain lines otherwise). */
export function createProgressBar(label: string, total: number, stream: NodeJS.WriteStream = process.stderr) {
  const width = 30;
  let lastPrintedDecile = -1;
  return {
    update(done: number, extra = '') {
      const fraction = total === 0 ? 1 : Math.min(1, done / total);
      if (stream.isTTY) {
        const filled = Math.round(fraction * width);
        stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${extra}   `);
        if (done >= total) stream.write('\n');
        return;
      }
      const decile = Math.floor(fraction * 10);
      if (decile !== lastPrintedDecile && (decile % 5 === 0 || done >= total)) {
        lastPrintedDecile = decile;
        stream.write(`${label}: ${done}/${total} ${extra}\n`);
      }
    },
  };
}

/**
 * The `hotpath` command line, on commander: every command and option, `--help` on each, and the
 * mapping of outcomes to exit codes (0 ok, 1 failure, 2 usage).
 *
 * Why commander: it gives nested commands (`queue list`), generated `--help` for every command,
 * typed option parsing with custom parsers and usage errors we can map to exit code 2 — the parts
 * `util.parseArgs` leaves to hand-written code — with no dependencies of its own, and v14 supports
 * Node 20 (v15 needs Node 22).
 * @module
 */
import { Command, CommanderError, Option } from 'commander';
import { isHotpathError } from '../core/errors.js';
import { runDashboard } from './commands/dashboard.js';
import { runDoctor } from './commands/doctor.js';
import { runMigrate } from './commands/migrate.js';
import {
  parseStatus,
  queueCancel,
  queueList,
  queuePurge,
  queueRetry,
  queueShow,
  queueStats,
} from './commands/queue.js';
import { runWorker } from './commands/worker.js';
import {
  CommandFailure,
  ExitCode,
  parseDuration,
  parseList,
  parsePort,
  parsePositiveInt,
  UsageError,
} from './common.js';
import { Output, type OutputStreams } from './output.js';

const EXIT_CODES_HELP = `
Exit codes: 0 success, 1 failure (a check failed, a database refused, a job was not found), 2 bad usage.
URLs default to HOTPATH_DATABASE_URL and HOTPATH_REDIS_URL. See docs/cli.md.`;

/** Runs the command line `argv` (without the node and script entries); resolves with the exit code. */
export async function runCli(argv: readonly string[], streams: OutputStreams = process): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const output = (command: Command) => new Output(streams, command.optsWithGlobals().json === true);
  const run =
    (fn: (command: Command) => Promise<number>) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      exitCode = await fn(command);
    };

  const program = new Command('hotpath')
    .description('Run, migrate, inspect and diagnose hotpath queues and storage.')
    .option('--json', 'machine-readable output (JSON; JSON lines for worker logs)')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => streams.stdout.write(text),
      writeErr: (text) => streams.stderr.write(text),
    })
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();

  const databaseOption = () =>
    new Option('--database-url <url>', 'database URL (sqlite://path, postgres://…; default HOTPATH_DATABASE_URL)');

  program
    .command('worker')
    .description('run the job handlers of a module until SIGTERM/SIGINT (graceful stop, leases handed back)')
    .argument('<module>', 'a .js/.mjs file whose default export is { type: handler } or (app) => …')
    .addOption(databaseOption())
    .option(
      '--concurrency <n>',
      'jobs run at once by this process',
      (v) => parsePositiveInt(v, '--concurrency', 10_000),
      1,
    )
    .option('--types <list>', 'only these job types (comma-separated)', parseList)
    .option(
      '--shutdown-timeout <duration>',
      'on SIGTERM, how long running jobs may finish before they are aborted and handed back',
      (v) => parseDuration(v, '--shutdown-timeout'),
      30_000,
    )
    .action(
      run((command) => {
        const opts = command.opts();
        return runWorker(
          command.args[0] as string,
          {
            databaseUrl: opts.databaseUrl,
            concurrency: opts.concurrency,
            types: opts.types,
            shutdownTimeoutMs: opts.shutdownTimeout,
          },
          output(command),
        );
      }),
    );

  program
    .command('migrate')
    .description('copy collections between databases, with progress, counts and a verification pass')
    .requiredOption('--from <url>', 'source database URL')
    .requiredOption('--to <url>', 'target database URL')
    .option('--collections <list>', 'only these collections (comma-separated; default all)', parseList)
    .option(
      '--batch-size <n>',
      'documents per read and write',
      (v) => parsePositiveInt(v, '--batch-size', 10_000),
      1000,
    )
    .option('--dry-run', 'check the target (reachable, tables can be created) and count; write nothing')
    .option('--no-verify', 'skip the document-by-document verification (counts are still compared)')
    .action(
      run((command) => {
        const opts = command.opts();
        return runMigrate(
          {
            from: opts.from,
            to: opts.to,
            collections: opts.collections,
            batchSize: opts.batchSize,
            dryRun: opts.dryRun === true,
            verify: opts.verify !== false,
          },
          output(command),
        );
      }),
    );

  const queue = program
    .command('queue')
    .description('inspect and steer stored jobs: stats, list, show, retry, cancel, purge')
    .addHelpText('after', EXIT_CODES_HELP);
  queue
    .command('stats')
    .description('stored jobs per status and the age of the oldest ready job')
    .addOption(databaseOption())
    .action(run((command) => queueStats(command.opts(), output(command))));
  queue
    .command('list')
    .description('a page of jobs, oldest first')
    .addOption(databaseOption())
    .option('--status <status>', 'queued, running, succeeded, failed or cancelled', (v) => parseStatus(v))
    .option('--type <type>', 'only this job type')
    .option('--limit <n>', 'jobs to show (at most 1000)', (v) => parsePositiveInt(v, '--limit', 1000), 50)
    .action(run((command) => queueList(command.opts(), output(command))));
  queue
    .command('show')
    .description('every field of one job (exit 1 when there is no such job)')
    .argument('<id>', 'job id')
    .addOption(databaseOption())
    .action(run((command) => queueShow(command.args[0] as string, command.opts(), output(command))));
  queue
    .command('retry')
    .description('put a failed or cancelled job back in the queue (attempts reset); or all of a status')
    .argument('[id]', 'job id')
    .addOption(databaseOption())
    .option('--status <status>', 'retry every job in this status: failed or cancelled', (v) =>
      parseStatus(v, ['failed', 'cancelled']),
    )
    .option('--type <type>', 'with --status: only this job type')
    .action(run((command) => queueRetry(command.args[0], command.opts(), output(command))));
  queue
    .command('cancel')
    .description('cancel a job: a queued one at once, a running one through its worker')
    .argument('<id>', 'job id')
    .addOption(databaseOption())
    .action(run((command) => queueCancel(command.args[0] as string, command.opts(), output(command))));
  queue
    .command('purge')
    .description('delete finished jobs older than a cutoff (chunked; retained dedupe keys are kept)')
    .addOption(databaseOption())
    .addOption(
      new Option('--status <status>', 'succeeded, failed or cancelled')
        .makeOptionMandatory()
        .argParser((v) => parseStatus(v, ['succeeded', 'failed', 'cancelled'])),
    )
    .requiredOption('--older-than <duration>', 'finished longer ago than this (7d, 12h, 30m…)', (v) =>
      parseDuration(v, '--older-than'),
    )
    .option('--type <type>', 'only this job type')
    .option('--dry-run', 'count what would be deleted; delete nothing')
    .action(
      run((command) => {
        const opts = command.opts();
        return queuePurge(
          { ...opts, olderThanMs: opts.olderThan, dryRun: opts.dryRun === true } as never,
          output(command),
        );
      }),
    );

  program
    .command('doctor')
    .description('check Node, drivers, URLs (latency), SQLite pragmas, PostgreSQL connections and clock, Redis')
    .addOption(databaseOption())
    .option('--redis-url <url>', 'Redis URL (default HOTPATH_REDIS_URL)')
    .option(
      '--pool-size <n>',
      'PostgreSQL connections per process',
      (v) => parsePositiveInt(v, '--pool-size', 10_000),
      10,
    )
    .option('--processes <n>', 'processes that each open a pool (default: the cores here)', (v) =>
      parsePositiveInt(v, '--processes', 10_000),
    )
    .option('--max-skew <duration>', 'largest tolerated clock difference against PostgreSQL', (v) =>
      parseDuration(v, '--max-skew'),
    )
    .option('--timeout <duration>', 'connect timeout per check', (v) => parseDuration(v, '--timeout'))
    .action(
      run(async (command) => {
        const opts = command.opts();
        const { defaultProcesses } = await import('./commands/doctor.js');
        return runDoctor(
          {
            databaseUrl: opts.databaseUrl,
            redisUrl: opts.redisUrl,
            poolSize: opts.poolSize,
            processes: opts.processes ?? defaultProcesses(),
            maxSkewMs: opts.maxSkew ?? 1000,
            timeoutMs: opts.timeout ?? 3000,
          },
          output(command),
        );
      }),
    );

  program
    .command('dashboard')
    .description('serve the dashboard page for a database (read-only unless --actions) until SIGTERM/SIGINT')
    .addOption(databaseOption())
    .option('--redis-url <url>', 'Redis URL (default HOTPATH_REDIS_URL)')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', parsePort, 8090)
    .option('--actions', 'allow retry/cancel/purge/invalidate from loopback clients', false)
    .action(
      run(async (command) => {
        const opts = command.opts();
        return runDashboard(
          {
            databaseUrl: opts.databaseUrl,
            redisUrl: opts.redisUrl,
            host: opts.host,
            port: opts.port,
            allowActions: opts.actions === true,
          },
          output(command),
        );
      }),
    );

  for (const command of [program, queue, ...program.commands, ...queue.commands]) {
    command.exitOverride().configureOutput({
      writeOut: (text) => streams.stdout.write(text),
      writeErr: (text) => streams.stderr.write(text),
    });
  }

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    return exitCodeOf(error, streams);
  }
}

/** Maps what a command threw to its exit code, printing it on stderr. */
function exitCodeOf(error: unknown, streams: OutputStreams): number {
  if (error instanceof CommanderError) {
    // `--help` ends with exitCode 0; every parse error (and help shown for a missing subcommand) is
    // a usage error, which commander reports as 1.
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (error instanceof UsageError) {
    streams.stderr.write(`hotpath: ${error.message}\n(run with --help for usage)\n`);
    return ExitCode.usage;
  }
  if (error instanceof CommandFailure) {
    streams.stderr.write(`hotpath: ${error.message}\n`);
    return ExitCode.failure;
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = isHotpathError(error) ? ` [${error.code}]` : '';
  streams.stderr.write(`hotpath: ${message}${code}\n`);
  return ExitCode.failure;
}

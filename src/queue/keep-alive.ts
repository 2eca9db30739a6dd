/**
 * Holds the process open while the queue has work to wait for: a started worker (until `stop()` /
 * `close()`) and every pending `wait()`. Every queue timer is unref'd (a backend that stays down must
 * not keep a closed queue alive), so without this a worker script on SQLite or memory would exit the
 * moment `start()` returned, and a producer awaiting `wait()` would exit with code 13.
 * @module
 */

/** A reference-counted hold on the event loop: one ref'd handle while anyone holds it. */
export class KeepAlive {
  #holders = 0;
  #handle: ReturnType<typeof setInterval> | undefined;

  /** Takes a hold; returns the function that gives it back (calling it twice is harmless). */
  hold(): () => void {
    this.#holders++;
    // A timer that never fires is Node's cheapest ref'd handle (no fd, no thread).
    this.#handle ??= setInterval(() => {}, 2_147_483_647);
    let isHeld = true;
    return () => {
      if (!isHeld) return;
      isHeld = false;
      if (--this.#holders === 0 && this.#handle !== undefined) {
        clearInterval(this.#handle);
        this.#handle = undefined;
      }
    };
  }
}

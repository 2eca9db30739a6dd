/**
 * Tag → keys index used by {@link Cache} and {@link MapCacheTier}: removing every key of a tag costs
 * time proportional to the keys removed, not to the size of the cache.
 * @module
 */

/** Maps each tag to the set of keys carrying it. Its size is bounded by the entries of its owner. */
export class TagIndex {
  #byTag = new Map<string, Set<string>>();

  /** Number of distinct tags currently indexed. */
  get size(): number {
    return this.#byTag.size;
  }

  /** Records that `key` carries every tag in `tags`. */
  add(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      let keys = this.#byTag.get(tag);
      if (keys === undefined) {
        keys = new Set();
        this.#byTag.set(tag, keys);
      }
      keys.add(key);
    }
  }

  /** Forgets that `key` carries `tags`; tags left without keys are dropped so the index stays bounded. */
  remove(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#byTag.delete(tag);
    }
  }

  /** Removes `tag` from the index and returns the keys that carried it. */
  take(tag: string): Set<string> | undefined {
    const keys = this.#byTag.get(tag);
    if (keys !== undefined) this.#byTag.delete(tag);
    return keys;
  }

  /** Forgets everything. */
  clear(): void {
    this.#byTag.clear();
  }
}

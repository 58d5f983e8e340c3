import { readFile } from 'node:fs/promises';

export const VERSION = '1.0';

export class Cache {
  get(key) {
    return this.store.get(key);
  }
}

const load = async (path) => {
  return readFile(path, 'utf8');
};

/**
 * Where `cove.path` points, checked before the client is started (pure: no `vscode` import, so vitest runs it): a
 * command that is not there gets one message that says what to set, not the client's own "couldn't create
 * connection" on top of it.
 */

import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";

/** The executable `command` names: a path (absolute, or relative to `cwd`), or a name looked up on `searchPath`. */
export function findExecutable(command: string, searchPath: string, cwd: string): string | undefined {
  if (command.includes("/") || isAbsolute(command)) {
    const path = resolve(cwd, command);
    return isExecutable(path) ? path : undefined;
  }
  for (const folder of searchPath.split(delimiter)) {
    if (folder !== "" && isExecutable(join(folder, command))) {
      return join(folder, command);
    }
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

import { chmodSync, mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { findExecutable } from "./executable";

describe("findExecutable", () => {
  const root = mkdtempSync(join(tmpdir(), "cove-exe-"));
  const bin = join(root, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "cove"), "#!/bin/sh\n");
  chmodSync(join(bin, "cove"), 0o755);
  writeFileSync(join(bin, "notes"), "not a program\n");

  it("finds a name on the search path, and an absolute or relative path", () => {
    expect(findExecutable("cove", `/nonexistent:${bin}`, "/")).toBe(join(bin, "cove"));
    expect(findExecutable(join(bin, "cove"), "", "/")).toBe(join(bin, "cove"));
    expect(findExecutable("bin/cove", "", root)).toBe(join(bin, "cove"));
  });

  it("refuses what is missing, not executable, or a folder", () => {
    expect(findExecutable("cove", "/nonexistent", "/")).toBeUndefined();
    expect(findExecutable(join(root, "no-such-cove"), bin, "/")).toBeUndefined();
    expect(findExecutable(join(bin, "notes"), "", "/")).toBeUndefined();
    expect(findExecutable(bin, "", "/")).toBeUndefined();
    expect(findExecutable("notes", bin, "/")).toBeUndefined();
  });
});

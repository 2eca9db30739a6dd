/**
 * Gate for tests that drive an external program (promtool, chromium). When the program is missing the test
 * file skips with one line naming the apt package — unless HOTPATH_REQUIRE_SERVICES=1 (CI), where it fails.
 */
import { execFileSync } from 'node:child_process';

const SERVICES_REQUIRED = process.env.HOTPATH_REQUIRE_SERVICES === '1';

/** The absolute path of `command` on PATH, or undefined. */
export function findCommand(command: string): string | undefined {
  try {
    const path = execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim();
    return path === '' ? undefined : path;
  } catch {
    return undefined;
  }
}

/**
 * The path of `command`, or undefined after printing one `[skip]` line.
 * @throws Error under HOTPATH_REQUIRE_SERVICES=1 when the command is missing.
 */
export function requireCommand(command: string, aptPackage: string): string | undefined {
  const path = findCommand(command);
  if (path !== undefined) return path;
  const line = `${command} is not installed (apt-get install -y ${aptPackage})`;
  if (SERVICES_REQUIRED) throw new Error(`${line}; HOTPATH_REQUIRE_SERVICES=1 makes this a failure`);
  console.warn(`[skip] ${line}: skipping this file`);
  return undefined;
}

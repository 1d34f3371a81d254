/** The one SIGINT/SIGTERM handler: every command that can be stopped asks for it here. */
import { signalExit } from "./exit.js";

export interface Stop {
  /** Aborted by the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** The signal that stopped the command, if one did. */
  received: () => NodeJS.Signals | undefined;
}

/** Never hang on the way out: whatever is still running this long after the first signal is abandoned. */
const GIVE_UP_MS = 10_000;

/**
 * SIGINT/SIGTERM: stop taking work, abort in-flight transfers, save state; a second signal exits at once.
 * `notice` tells the user (a line on stderr by default; the worker logs it).
 */
export function stopOnSignals(notice: (sig: NodeJS.Signals) => void = stderrNotice): Stop {
  const ac = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) process.exit(signalExit(sig));
    received = sig;
    notice(sig);
    ac.abort();
    setTimeout(() => process.exit(signalExit(sig)), GIVE_UP_MS).unref();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return { signal: ac.signal, received: () => received };
}

function stderrNotice(sig: NodeJS.Signals): void {
  process.stderr.write(
    `\n${sig}: stopping (in-flight transfers are aborted and state is saved; send again to exit now)\n`,
  );
}

/** `envoy-archiver audit`: the tamper-evident audit trail, printed or checked. */
import type { Command } from "commander";
import type { ChainLink } from "../../state/db.js";
import type { TrailCheck } from "../../jobs/audit.js";
import { loggerFor, settingsFor } from "../context.js";
import { EXIT } from "../exit.js";
import { settingOptions, type SettingFlags } from "../options.js";

interface AuditFlags extends SettingFlags {
  verify?: boolean;
  json?: boolean;
}

export function addAuditCommand(program: Command): void {
  const cmd = program
    .command("audit")
    .summary("print the tamper-evident audit trail, or check it against the bucket (--verify)")
    .description(
      "Print the audit trail: one record for every command that changed or attested the archive (run, " +
        "reconcile, verify, manifest, report, export, hold), with its time, actor (user@host), version, window, " +
        "outcome and counts. Each record carries the SHA-256 of the one before it (a hash chain), and after each " +
        "command the chain's head is also written to the bucket under {prefix}_audit/, one object per command " +
        "(locked like the recordings when lock settings are on).\n\n" +
        "--verify recomputes every record's hash, checks each follows the one before, and compares the chain with " +
        "the heads the bucket holds. Exit 0 when intact; 3 naming the first broken record: edited, deleted, or a " +
        "state DB that is truncated or an older copy than the bucket's trail; 1 when the bucket cannot be read.",
    )
    .option("--verify", "check the chain and compare it with the bucket's heads")
    .option("--json", "print JSON (the records as JSON lines, or the check as one object)");
  settingOptions(cmd, ["db", "bucket", "prefix"], {
    bucket: "bucket holding the trail's heads (without it --verify checks the DB alone)",
  }).action(auditAction);
}

async function auditAction(flags: AuditFlags): Promise<void> {
  const { config } = settingsFor(flags, undefined, () => undefined);
  const { readTrail, checkTrail } = await import("../../jobs/audit.js");
  if (!flags.verify) {
    const links = readTrail(config);
    process.stdout.write(
      flags.json ? links.map((l) => JSON.stringify(l) + "\n").join("") : formatTrail(links),
    );
    return;
  }
  const res = await checkTrail(config, { logger: loggerFor(config) });
  process.stdout.write(flags.json ? JSON.stringify(res) + "\n" : formatCheck(res));
  process.exitCode = res.broken ? EXIT.failures : EXIT.ok;
}

function formatTrail(links: readonly ChainLink[]): string {
  if (links.length === 0) return "audit: no records yet\n";
  const lines = links.map((l) => {
    const r = l.record;
    const window = r.window_start || r.window_end ? ` ${r.window_start ?? "…"}..${r.window_end ?? "…"}` : "";
    return `#${l.seq}  ${String(r.finished_at)}  ${String(r.actor)}  v${String(r.archiver_version)}  ${String(r.command)}${window}  ${String(r.outcome)}  sha256 ${l.sha256}\n`;
  });
  return (
    lines.join("") + `audit: ${links.length} records, head #${links.at(-1)!.seq} ${links.at(-1)!.sha256}\n`
  );
}

function formatCheck(c: TrailCheck): string {
  const out: string[] = [];
  if (c.broken) out.push(`audit: BROKEN at record #${c.broken.seq}: ${c.broken.reason}`);
  else
    out.push(`audit: intact, ${c.records} records${c.head ? `, head #${c.head.seq} ${c.head.sha256}` : ""}`);
  if (!c.bucket) out.push("audit: no bucket set: the trail was not compared with the bucket's heads");
  else {
    const b = c.bucket;
    out.push(
      `audit: the bucket holds ${b.heads} heads of this trail${b.latest ? `, the latest #${b.latest.seq}` : ""}` +
        (b.unanchored > 0 ? `; ${b.unanchored} records after it are not anchored in the bucket yet` : ""),
    );
    if (b.otherTrails.length > 0)
      out.push(
        `audit: the bucket also holds other trails (other shards' state DBs?): ${b.otherTrails.join(", ")}`,
      );
  }
  return out.join("\n") + "\n";
}

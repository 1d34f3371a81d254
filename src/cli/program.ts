/** The command tree: every command, the help text after it, and a bad flag anywhere as a usage error. */
import { Command } from "commander";
import { PACKAGE_VERSION } from "../base/paths.js";
import { addAuditCommand } from "./commands/audit.js";
import { addExportCommand } from "./commands/export.js";
import { addHoldCommand } from "./commands/hold.js";
import { addManifestCommand } from "./commands/manifest.js";
import { addReportCommand } from "./commands/report.js";
import { addReconcileCommand } from "./commands/reconcile.js";
import { addRunCommand } from "./commands/run.js";
import { addStatusCommand } from "./commands/status.js";
import { addVerifyCommand } from "./commands/verify.js";
import { addWorkerCommand } from "./commands/worker.js";
import { settingsHelp } from "./help.js";

export function buildProgram(): Command {
  const program = new Command();
  // Before any subcommand is added, so that each inherits it: a bad flag anywhere is a usage error (exit 2).
  program.exitOverride();
  program
    .name("envoy-archiver")
    .description("Archive Envoy call recordings into S3, byte for byte, resumably.")
    .version(PACKAGE_VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", settingsHelp);
  addRunCommand(program);
  addWorkerCommand(program);
  addReconcileCommand(program);
  addManifestCommand(program);
  addVerifyCommand(program);
  addStatusCommand(program);
  addAuditCommand(program);
  addHoldCommand(program);
  addExportCommand(program);
  addReportCommand(program);
  return program;
}

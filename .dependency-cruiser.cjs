/**
 * The layers of src/ (docs/architecture.md): cli -> jobs -> {envoy, s3, state} -> base, with observe beside
 * (usable from jobs and cli). `npm run deps` checks them; .ci/run runs it.
 */
const layer = (name) => `^src/${name}/`;
const not = (...names) => `^src/(?!(${names.join("|")})/)`;

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import circle ties two modules into one: neither can be read or tested alone.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "base-is-the-floor",
      severity: "error",
      comment: "base/ holds policies and values every layer uses; it imports nothing else of the project.",
      from: { path: layer("base") },
      to: { path: not("base") },
    },
    {
      name: "observe-sees-only-base",
      severity: "error",
      comment: "observe/ (logger, metrics, progress, the run observer and tally) is used by jobs and cli.",
      from: { path: layer("observe") },
      to: { path: not("base", "observe") },
    },
    {
      name: "envoy-stands-alone",
      severity: "error",
      comment: "envoy/ (the API and media source) owns its types; only base below it.",
      from: { path: layer("envoy") },
      to: { path: not("base", "envoy") },
    },
    {
      name: "s3-stands-alone",
      severity: "error",
      comment: "s3/ (the ObjectStore port and its S3 adapter) owns its types; only base below it.",
      from: { path: layer("s3") },
      to: { path: not("base", "s3") },
    },
    {
      name: "state-stands-alone",
      severity: "error",
      comment: "state/ (the SQLite state DB) owns its types; only base below it.",
      from: { path: layer("state") },
      to: { path: not("base", "state") },
    },
    {
      name: "jobs-below-cli",
      severity: "error",
      comment:
        "jobs/ (run, verify, manifest, reconcile, status, worker) are a library a test can call: no cli.",
      from: { path: layer("jobs") },
      to: { path: "^src/cli(/|\\.ts$)|^src/index\\.ts$" },
    },
    {
      name: "nothing-imports-the-entry-points",
      severity: "error",
      comment:
        "src/index.ts (the library's surface) and src/cli.ts (the executable) are imported by nobody in src/.",
      from: { path: "^src/" },
      to: { path: "^src/(index|cli)\\.ts$" },
    },
    {
      name: "src-stands-alone",
      severity: "error",
      comment: "The product never imports its tests, benches, scripts or the simulator.",
      from: { path: "^src/" },
      to: { path: "^(test|bench|scripts|simulator)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|node_modules)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
    },
  },
};

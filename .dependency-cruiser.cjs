/**
 * The layers of src/ (docs/architecture.md): cli -> jobs -> {envoy, s3, state} -> base, with observe beside
 * (usable from jobs and cli). `npm run deps` checks them; .ci/run runs it.
 */
const layer = (name) => `^src/${name}/`;
const not = (...names) => `^src/(?!(${names.join("|")})/)`;
/** A layer that imports only itself and the layers named. */
const onlyBelow = (name, below, comment) => ({
  name: `${name}-imports-only-${["itself", ...below].join("-and-")}`,
  severity: "error",
  comment,
  from: { path: layer(name) },
  to: { path: not(name, ...below) },
});

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import circle ties two modules into one: neither can be read or tested alone.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    onlyBelow(
      "base",
      [],
      "base/ holds policies and values every layer uses; it imports nothing else of the project.",
    ),
    onlyBelow(
      "observe",
      ["base"],
      "observe/ (logger, tally, run observer, progress, metrics) is used by jobs and cli.",
    ),
    onlyBelow("envoy", ["base"], "envoy/ (the API and media source) owns its types; only base below it."),
    onlyBelow(
      "s3",
      ["base"],
      "s3/ (the ObjectStore port and its S3 adapter) owns its types; only base below it.",
    ),
    onlyBelow("state", ["base"], "state/ (the SQLite state DB) owns its types; only base below it."),
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

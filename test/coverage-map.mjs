// tap's coverage map (package.json "tap"."coverage-map"): whichever test runs, coverage is
// measured on the product only, src/ and plugins/, so that test helpers, benchmarks and scripts
// the tests load count neither for nor against it.
export default () => ['src/**/*.ts', 'plugins/**/*.ts']

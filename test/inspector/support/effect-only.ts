// The modules `effect` itself loads, for test/inspector/loading.test.ts to compare with.
import "effect"

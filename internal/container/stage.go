// Package container PLACEHOLDER
package container

// StageArg is the hidden first argument of the re-executed container stage.
const StageArg = "__launch_stage"

// StageMain PLACEHOLDER
func StageMain(args []string) int { return 255 }

//go:build !race

package squashfs

// raceEnabled says the race detector is on; it changes allocation counts.
const raceEnabled = false

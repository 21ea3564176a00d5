//go:build !linux

package es512

import "time"

// threadCPU reports that the benchmarks have no thread CPU clock here: they
// report wall-clock ratios only.
func threadCPU() (time.Duration, bool) { return 0, false }

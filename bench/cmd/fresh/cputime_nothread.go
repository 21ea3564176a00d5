//go:build !linux

package main

import "time"

// threadCPU is not measured here: thread CPU figures read 0.
func threadCPU() time.Duration { return 0 }

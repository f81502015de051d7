package testgen

// The TLS transcripts first (the captures replay them), then the captures.
//go:generate go run ../cmd/zoomprobe-gen -tls-cache tlscache
//go:generate go run ../cmd/zoomprobe-gen -testdata ../testdata

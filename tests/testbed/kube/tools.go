//go:build tools

// Package tools exists only so that `go mod tidy` keeps the Kubernetes
// commands this test bed builds in go.mod and go.sum.
package tools

// Package e2e holds the dashboard's end-to-end tests: the real gateway,
// mock upstream and dashboard binaries, driven through headless Chromium.
// It has no code of its own; see browser_test.go.
package e2e

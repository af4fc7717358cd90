//go:build tools

// Package tools pins the FerretDB command so that `go build` can build it from
// this module; nothing here is compiled into Looped.
package tools

import _ "github.com/FerretDB/FerretDB/cmd/ferretdb"

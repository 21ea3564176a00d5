// Package gojam holds the JAM API contract, openapi.yaml, and the commands
// that generate typed Go code from it into generated/.
//
// Most programs import github.com/go-jam/go-jam/jam instead; this package is
// for tests and tools that need the contract itself.
package gojam

import _ "embed"

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config api/jamclient.yaml openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config api/jamserver.yaml openapi.yaml

// OpenAPI is openapi.yaml, the OpenAPI 3.0 description of the JAM API.
//
//go:embed openapi.yaml
var OpenAPI []byte

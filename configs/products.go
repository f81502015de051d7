// Package configs embeds the data files the binary needs when the
// configuration names no file of its own.
package configs

import _ "embed"

// InterceptionProducts is interception-products.yml: the built-in
// interception product signatures (tls.products_file replaces it).
//
//go:embed interception-products.yml
var InterceptionProducts []byte

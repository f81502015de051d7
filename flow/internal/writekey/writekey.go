// Package writekey is the capability to write a flow's identity. Go's
// internal rule lets only packages under flow/ import it, so flow/identity is
// the one package outside flow that can make a Key: analyzers and the engine
// read identity through flow.Flow's accessors and cannot write it.
package writekey

// Key proves its holder may write identity. The zero Key is refused, so one
// conjured by reflection or a generic zero value writes nothing.
type Key struct{ valid bool }

// New makes a valid key.
func New() Key { return Key{valid: true} }

// Valid reports whether k came from New.
func (k Key) Valid() bool { return k.valid }

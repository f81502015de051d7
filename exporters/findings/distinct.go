package findings

import "math"

// sketchSize is how many hashes a distinct counter keeps: exact up to this
// many clients, then an estimate with a relative error of about
// 1/sqrt(sketchSize-2), 18 %.
const sketchSize = 32

// distinct counts distinct clients with a k-minimum-values sketch: the
// sketchSize smallest keyed hashes seen, in ascending order. 256 bytes
// whatever the number of clients; no address is kept.
type distinct struct {
	h [sketchSize]uint64
	n uint8
}

func (d *distinct) add(x uint64) {
	n := int(d.n)
	if n == sketchSize && x >= d.h[n-1] {
		return
	}
	// Insertion point in the sorted prefix; a hash already there is a
	// client already counted.
	i := 0
	for i < n && d.h[i] < x {
		i++
	}
	if i < n && d.h[i] == x {
		return
	}
	if n < sketchSize {
		n++
		d.n++
	}
	copy(d.h[i+1:n], d.h[i:n-1])
	d.h[i] = x
}

// count is the number of distinct clients: exact below sketchSize, else
// estimated ((k-1) divided by the k-th smallest hash as a fraction of the
// hash space) and flagged.
func (d *distinct) count() (n int, estimated bool) {
	if d.n < sketchSize {
		return int(d.n), false
	}
	frac := float64(d.h[sketchSize-1]) / math.Exp2(64)
	if frac <= 0 {
		return sketchSize, true
	}
	return max(sketchSize, int(math.Round(float64(sketchSize-1)/frac))), true
}

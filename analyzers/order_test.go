package analyzers

import (
	"strings"
	"testing"
)

type unlisted struct{}

func (unlisted) Name() string                      { return "unlisted" }
func (unlisted) Init(Env) (func() Analyzer, error) { return nil, nil }

// An analyzer missing from Order cannot register: the order is never
// implicit.
func TestRegisterNeedsOrder(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "analyzers.Order") {
			t.Fatalf("panic %v", r)
		}
		if _, err := Lookup("unlisted"); err == nil {
			t.Error("registered anyway")
		}
	}()
	Register(unlisted{})
}

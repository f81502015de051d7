package testbed

import "testing"

// TestScenarios runs the whole suite on fresh beds, one after another (the
// CI machines have two cores). Daemon-level assertions are added by the
// engine's tests through RunScenario's observe function.
func TestScenarios(t *testing.T) {
	scs, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			RunScenario(t, sc, nil)
		})
	}
}

package testbed

import "testing"

// TestScenarios runs the whole suite on fresh beds, one after another (the
// CI machines have two cores): each asserts the client's result and the
// traffic on the mirror (RunScenario), then the daemon's findings and
// metrics on the capture (observeDaemon).
func TestScenarios(t *testing.T) {
	scs, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			RunScenario(t, sc, observeDaemon)
		})
	}
}

package testbed

import "testing"

func TestSmoke(t *testing.T) {
	b, err := New(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.RunClient(ClientPlan{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	b.Mirror.WaitQuiet(100e6, 1e9)
	for _, s := range DecodeAll(b.Mirror.Packets()) {
		t.Log(s)
	}
}

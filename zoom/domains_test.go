package zoom

import (
	"strings"
	"testing"
)

func TestIsZoomName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"zoom.us", true},
		{"ZOOM.US", true},
		{"zoom.us.", true},
		{"www.zoom.us", true},
		{"zoomam104zc.zoom.us", true},
		{"zoomsjccv154mmr.sjc.zoom.us.", true},
		{"zoom.com", true},
		{"us05web.Zoom.com", true},
		{"zoomgov.com", true},
		{"a.zoomgov.com", true},
		{"zoomcrc.com", true},
		{"x.zoomonprem.com", true},
		{"zoomapp.cloud", true},
		{"status.zoomstatus.com", true},
		{"zoom.com.cn", true},
		{"www.zoom.com.cn", true},
		{"notzoom.us", false},
		{"zoom.us.evil.com", false},
		{"zoom.usa", false},
		{"xzoom.com", false},
		{"zoom.co", false},
		{"com.cn", false},
		{"zoom", false},
		{"us", false},
		{"", false},
		{".", false},
		{".zoom.us", true}, // empty first label: still under zoom.us
		{"zoom.us..", false},
		{"evilzoom.com.cn", false},
	}
	for _, tc := range tests {
		if got := IsZoomName(tc.name); got != tc.want {
			t.Errorf("IsZoomName(%q) = %v, want %v", tc.name, got, tc.want)
		}
		if got := IsZoomNameBytes([]byte(tc.name)); got != tc.want {
			t.Errorf("IsZoomNameBytes(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if d, ok := ZoomDomain("ZoomFRN99MMR.zoom.US."); !ok || d != "zoom.us" {
		t.Errorf("ZoomDomain = %q, %v", d, ok)
	}
	if d, ok := ZoomDomain("a.b.zoom.com.cn"); !ok || d != "zoom.com.cn" {
		t.Errorf("ZoomDomain(zoom.com.cn) = %q, %v", d, ok)
	}
}

func TestServiceForName(t *testing.T) {
	tests := []struct {
		name string
		want Service
	}{
		{"zoomam104zc.zoom.us", ServiceZoneController},
		{"zoomfr85zc.zoom.us", ServiceZoneController},
		{"ZOOMFR85ZC.ZOOM.US.", ServiceZoneController},
		{"zoomfrn99mmr.zoom.us", ServiceMediaRouter},
		{"zoomsjccv154mmr.sjc.zoom.us", ServiceMediaRouter},
		{"zoomSJCCV154MMR.sjc.zoom.us.", ServiceMediaRouter},
		{"zoom.us", ServiceWeb},
		{"zoom.com", ServiceWeb},
		{"zoomgov.com", ServiceWeb},
		{"www.zoom.us", ServiceWeb},
		{"www3.zoom.us", ServiceWeb},
		{"us04web.zoom.us", ServiceWeb},
		{"us05web.zoom.com", ServiceWeb},
		{"log.zoom.us", ServiceWeb},
		{"api.zoom.us", ServiceWeb},
		{"www.zoom.com", ServiceWeb},
		{"status.zoom.us", ServiceWeb},
		{"anything.zoomstatus.com", ServiceWeb},
		{"xmpp.zoom.us", ServiceOther},
		{"zc.zoom.us", ServiceOther}, // "zc" alone is no zone controller
		{"wwwx.zoom.us", ServiceOther},
		{"web.zoom.us", ServiceOther},
		{"u5web.zoom.us", ServiceOther},
		{"zoomcrc.com.zoom.us", ServiceOther},
		{"mmr.example.com", ServiceNone}, // not Zoom's
		{"zoomam104zc.zoom.us.evil.com", ServiceNone},
		{"notzoom.us", ServiceNone},
		{"zoom.us..", ServiceNone}, // one trailing dot only (found by fuzzing)
		{"", ServiceNone},
	}
	for _, tc := range tests {
		if got := ServiceForName(tc.name); got != tc.want {
			t.Errorf("ServiceForName(%q) = %v, want %v", tc.name, got, tc.want)
		}
		if got := ServiceForNameBytes([]byte(tc.name)); got != tc.want {
			t.Errorf("ServiceForNameBytes(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNameChecksDoNotAllocate(t *testing.T) {
	names := []string{"zoomsjccv154mmr.sjc.zoom.us.", "www3.zoom.us", "notzoom.us", "zoomam104zc.zoom.us"}
	b := []byte("ZoomFRN99MMR.zoom.us")
	if n := testing.AllocsPerRun(100, func() {
		for _, s := range names {
			IsZoomName(s)
			ServiceForName(s)
		}
		IsZoomNameBytes(b)
		ServiceForNameBytes(b)
	}); n != 0 {
		t.Errorf("name checks allocate %.1f times", n)
	}
}

func BenchmarkServiceForName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ServiceForName("zoomsjccv154mmr.sjc.zoom.us")
		ServiceForName("www.example.com")
	}
}

func FuzzZoomName(f *testing.F) {
	for _, s := range []string{"zoom.us", "zoomsjccv154mmr.sjc.zoom.us.", "zoomam104zc.zoom.us", "notzoom.us", "zoom.us.evil.com", "us05web.zoom.com", "a.zoom.com.cn", "..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		is := IsZoomName(name)
		svc := ServiceForName(name)
		if is != (svc != ServiceNone) || is != IsZoomNameBytes([]byte(name)) || svc != ServiceForNameBytes([]byte(name)) {
			t.Fatalf("%q: IsZoomName %v, ServiceForName %v disagree", name, is, svc)
		}
		// reference: lowercase, drop one trailing dot, label-boundary suffix
		n := strings.TrimSuffix(strings.ToLower(name), ".")
		ref := false
		for _, d := range Domains {
			if n == d || strings.HasSuffix(n, "."+d) {
				ref = true
			}
		}
		// ToLower on invalid UTF-8 can change lengths; compare only for ASCII
		ascii := true
		for i := 0; i < len(name); i++ {
			if name[i] >= 0x80 {
				ascii = false
			}
		}
		if ascii && ref != is {
			t.Fatalf("IsZoomName(%q) = %v, reference %v", name, is, ref)
		}
		if svc != ServiceNone && !svc.IsZoom() {
			t.Fatalf("ServiceForName(%q) = %v", name, svc)
		}
	})
}

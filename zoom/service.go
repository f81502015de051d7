// Package zoom knows what Zoom is: its domains, address ranges, ports,
// services, UDP protocol and the error codes its users see.
package zoom

// Service is the class of a Zoom endpoint, judged from its name or port.
type Service uint8

const (
	ServiceNone           Service = iota // not Zoom, not watched
	ServiceWeb                           // zoom.us, www*.zoom.us, sign-in, API
	ServiceZoneController                // *zc.zoom.us
	ServiceMediaRouter                   // *mmr*.zoom.us, TCP/TLS media on 443/8801/8802
	ServiceMedia                         // UDP media 8801-8810, STUN 3478/3479
	ServiceCDN                           // ZoomCDN ranges, CloudFront
	ServicePhone                         // Zoom Phone ranges and ports
	ServiceOther                         // Zoom, but no finer class
	ServiceWatched                       // not Zoom; watched because the config names it
	numServices
)

var serviceNames = [numServices]string{"none", "web", "zone_controller", "media_router", "media", "cdn", "phone", "other", "watched"}

// String is the metric label value and JSON name of the service.
func (s Service) String() string {
	if s >= numServices {
		return "other"
	}
	return serviceNames[s]
}

// IsZoom reports whether the service is one of Zoom's.
func (s Service) IsZoom() bool { return s != ServiceNone && s != ServiceWatched && s < numServices }

// Services lists every service, for pre-creating metric label values.
func Services() []Service {
	out := make([]Service, 0, numServices)
	for s := Service(0); s < numServices; s++ {
		out = append(out, s)
	}
	return out
}

// ParseService turns a label value back into a Service.
func ParseService(name string) (Service, bool) {
	for i, n := range serviceNames {
		if n == name {
			return Service(i), true
		}
	}
	return ServiceNone, false
}

// NumServices is the number of Service values, for arrays indexed by service.
const NumServices = int(numServices)

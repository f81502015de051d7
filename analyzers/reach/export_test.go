package reach

// ParseSNIForTest exposes the minimal SNI reader to the external tests.
func ParseSNIForTest(b []byte) string { return string(parseSNI(b)) }

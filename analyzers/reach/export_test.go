package reach

// HoldNone makes a analyze every packet into a full state at once, as before
// packets were held.
func HoldNone(a *Analyzer) { a.holdNone = true }

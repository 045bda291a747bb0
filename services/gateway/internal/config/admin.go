package config

// Admin configures the admin API and the usage ledger (README "Who spent what").
type Admin struct {
	// TokenFile holds the admin API's bearer token
	// (KEYWARD_ADMIN_TOKEN_FILE); it is re-read on change. Without it the
	// admin API answers 404.
	TokenFile string
	// LedgerRetentionDays is how long the usage ledger keeps a day
	// (KEYWARD_LEDGER_RETENTION_DAYS, default 35).
	LedgerRetentionDays int
	// Ledger switches the usage ledger on (KEYWARD_LEDGER, default on).
	// With budgets or tokens per minute configured its writes ride in the
	// settle's round trip; with neither there is no settle, and the ledger
	// costs one pipelined write per call, which "off" saves.
	Ledger bool
}

func loadAdmin(p *problems, get func(string, string) string) Admin {
	return Admin{
		TokenFile:           get("KEYWARD_ADMIN_TOKEN_FILE", ""),
		LedgerRetentionDays: intVar(p, get, "KEYWARD_LEDGER_RETENTION_DAYS", 35, 1),
		Ledger:              onOff(p, get, "KEYWARD_LEDGER", true),
	}
}

func onOff(p *problems, get func(string, string) string, name string, def bool) bool {
	switch v := get(name, ""); v {
	case "":
		return def
	case "on", "true", "1":
		return true
	case "off", "false", "0":
		return false
	default:
		p.addf("%s %q: want on or off", name, v)
		return def
	}
}

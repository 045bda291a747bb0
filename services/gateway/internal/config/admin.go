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
}

func loadAdmin(p *problems, get func(string, string) string) Admin {
	return Admin{
		TokenFile:           get("KEYWARD_ADMIN_TOKEN_FILE", ""),
		LedgerRetentionDays: intVar(p, get, "KEYWARD_LEDGER_RETENTION_DAYS", 35, 1),
	}
}

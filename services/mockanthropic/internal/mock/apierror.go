package mock

import (
	"net/http"
	"strconv"
)

// Error types of the Anthropic API (the error.type field).
const (
	errInvalidRequest  = "invalid_request_error"
	errAuthentication  = "authentication_error"
	errBilling         = "billing_error"
	errPermission      = "permission_error"
	errNotFound        = "not_found_error"
	errConflict        = "conflict_error"
	errRequestTooLarge = "request_too_large"
	errRateLimit       = "rate_limit_error"
	errAPI             = "api_error"
	errTimeout         = "timeout_error"
	errOverloaded      = "overloaded_error"
)

// StatusOverloaded is Anthropic's non-standard "overloaded" status code.
const StatusOverloaded = 529

// apiError is one Anthropic-shaped error response. Handlers return it instead of writing,
// so that every error leaves through writeError with the same headers and body shape.
type apiError struct {
	status  int
	errType string
	message string

	retryAfter   *int  // seconds, sent as retry-after
	retryAfterMs *int  // sent as retry-after-ms
	shouldRetry  *bool // sent as x-should-retry
	errorCode    string
	param        string // error.param, only for echo_key_fields
	requestID    string // replaces the body's request_id, only for echo_key_fields
}

func (e *apiError) Error() string { return e.errType + ": " + e.message }

func newAPIError(status int, errType, message string) *apiError {
	return &apiError{status: status, errType: errType, message: message}
}

func invalidRequest(message string) *apiError {
	return newAPIError(http.StatusBadRequest, errInvalidRequest, message)
}

// defaultErrorType maps a status to the error.type the real API uses for it.
func defaultErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return errAuthentication
	case http.StatusPaymentRequired:
		return errBilling
	case http.StatusForbidden:
		return errPermission
	case http.StatusNotFound:
		return errNotFound
	case http.StatusConflict:
		return errConflict
	case http.StatusRequestEntityTooLarge:
		return errRequestTooLarge
	case http.StatusTooManyRequests:
		return errRateLimit
	case http.StatusGatewayTimeout:
		return errTimeout
	case StatusOverloaded:
		return errOverloaded
	}
	if status >= 500 {
		return errAPI
	}
	return errInvalidRequest
}

// defaultErrorMessage returns wording close to what the real API sends for injected faults.
func defaultErrorMessage(status int, errType string) string {
	switch errType {
	case errOverloaded:
		return "Overloaded"
	case errRateLimit:
		return "This request would exceed the rate limit for your organization of 50 requests per minute. Please try again later."
	case errAPI:
		return "Internal server error"
	case errTimeout:
		return "Request timed out"
	case errAuthentication:
		return "invalid x-api-key"
	case errPermission:
		return "Your API key does not have permission to use the specified resource."
	case errNotFound:
		return "The requested resource could not be found."
	case errBilling:
		return "Your credit balance is too low to access the Anthropic API."
	case errConflict:
		return "The request conflicts with the current state of the resource."
	case errRequestTooLarge:
		return "Request exceeds the maximum allowed number of bytes."
	}
	return "Injected error with status " + strconv.Itoa(status) + "."
}

type errorJSON struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details *struct {
			ErrorCode string `json:"error_code"`
		} `json:"details,omitempty"`
		Param string `json:"param,omitempty"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// newErrorJSON is {"type":"error","error":{...},"request_id":"..."}.
func newErrorJSON(e *apiError, requestID string) *errorJSON {
	j := &errorJSON{Type: "error", RequestID: requestID}
	j.Error.Type, j.Error.Message, j.Error.Param = e.errType, e.message, e.param
	if e.errorCode != "" {
		j.Error.Details = &struct {
			ErrorCode string `json:"error_code"`
		}{e.errorCode}
	}
	if e.requestID != "" {
		j.RequestID = e.requestID
	}
	return j
}

// writeError writes e as the complete response.
func writeError(w http.ResponseWriter, e *apiError, requestID string) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if _, ok := h["Request-Id"]; !ok {
		h["Request-Id"] = []string{requestID}
	}
	if e.retryAfter != nil {
		h["Retry-After"] = []string{strconv.Itoa(*e.retryAfter)}
	}
	if e.retryAfterMs != nil {
		h["Retry-After-Ms"] = []string{strconv.Itoa(*e.retryAfterMs)}
	}
	if e.shouldRetry != nil {
		h["X-Should-Retry"] = []string{strconv.FormatBool(*e.shouldRetry)}
	}
	j := getJSONBuf()
	j.encode(newErrorJSON(e, requestID))
	h["Content-Length"] = []string{strconv.Itoa(j.buf.Len())}
	w.WriteHeader(e.status)
	_, _ = w.Write(j.buf.Bytes())
	putJSONBuf(j)
}

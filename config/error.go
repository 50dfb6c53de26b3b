package config

import "fmt"

// Error is a configuration error located at a file and line.
// Error() is "file:line: directive: message" (the directive part is left
// out when unknown). Err is the underlying cause, available to errors.Is
// and errors.As via Unwrap.
type Error struct {
	File      string
	Line      int
	Directive string
	Err       error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Directive == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Directive, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

# Deny: no personal data (e-mail addresses, US social security numbers, IBANs) in any step
# output or LLM reply. A deny halts the run (the policy processor issues halt_execution).
package omium.pii

import rego.v1

patterns := {
	"an e-mail address": `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
	"a social security number": `\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b`,
	"an IBAN": `\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b`,
}

deny contains sprintf("%v contains %v", [input.target, name]) if {
	some name, pattern in patterns
	regex.match(pattern, input.output)
}

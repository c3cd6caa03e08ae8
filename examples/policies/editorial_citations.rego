# Warn: every paragraph of a report (below its title) should cite a source. Warn mode records
# a PolicyViolated event and lets the run go on.
package omium.editorial

import rego.v1

uncited := [paragraph |
	some paragraph in regex.split(`\n\s*\n`, input.output_json.report)
	text := trim_space(paragraph)
	text != ""
	not startswith(text, "#")
	not contains(text, "[source:")
]

deny contains sprintf("%d paragraph(s) of the report cite no source", [count(uncited)]) if {
	input.target == "step_output"
	count(uncited) > 0
}

"""Reports: the comparison table of finished runs (`table`: terminal, CSV, Markdown) and
the study report (`study_report.write_report`: a finished study directory -> one
self-contained HTML file, a Markdown twin and PNG/SVG figures: the paper's Table 4 and
Figures 4-8 beside ours, strategy and teacher tables with bootstrap intervals and
McNemar tests, costs, across-seed tests and a plain-language summary)."""

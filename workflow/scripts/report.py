"""Rule report: one self-contained HTML report per region."""

from lithomap.logs import rule_script
from lithomap.report import build_report

with rule_script(snakemake) as log:  # noqa: F821 (set by Snakemake)
    smk = snakemake  # noqa: F821
    build_report(smk.wildcards.region, smk.params.runs, smk.output.html,
                 results_dir=smk.params.results_dir,
                 description=smk.params.description or "")

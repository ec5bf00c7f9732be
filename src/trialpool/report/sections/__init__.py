"""The report's sections, one module each, named after what the section shows.

Every module has one ``section(ctx)`` that returns the section's nodes (and writes the
section's CSV table or figures through the context); ``analyses.run_analysis`` builds
one analysis of the plan.
"""

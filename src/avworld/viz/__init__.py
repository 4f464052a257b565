"""Human-facing outputs: images, HTML reports, galleries."""

"""Custom labels: import, check, visualise and export labelled images, and train custom-label models from them."""

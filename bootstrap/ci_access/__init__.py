"""What CI needs in an AWS account before any stack exists, and the repository settings for it."""

"""Data preparation: chunking documents, generating question-answer pairs, curating them."""

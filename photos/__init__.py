"""What makes an uploaded file an acceptable lesion photo: decoded, bounded, turned upright,
stripped of metadata and stored losslessly (``photos.uploads``).

Below the apps that take photos (``diagnosis``: a case's photos, a retake, the photos that
answer a specialist's question): it knows nothing of patients, cases or users.
"""

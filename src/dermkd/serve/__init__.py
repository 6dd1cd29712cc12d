"""Using a trained model outside its run: batch prediction in the ISIC submission format."""

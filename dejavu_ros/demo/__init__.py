"""The embedded default job: a generated street by day and by night, mapped and relocalized."""

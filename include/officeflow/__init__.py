"""OfficeFlow core: settings, the OfficeFlow store and its migrations, templating."""

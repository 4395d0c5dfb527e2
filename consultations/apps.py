from django.apps import AppConfig


class ConsultationsConfig(AppConfig):
    name = "consultations"
    verbose_name = "Consultations"

    def ready(self):
        from consultations import cover_cache, held_claims

        cover_cache.connect()
        held_claims.connect()

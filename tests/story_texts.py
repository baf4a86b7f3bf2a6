"""Articles for the story tests: one event by three outlets, another event and two trials that share its
keywords (tests/test_stories.py, tests/test_e2e_stories.py)."""

# One event, three outlets, written differently.
QUAKE_A = """A magnitude 7.8 earthquake struck southern Turkey near Gaziantep early on Monday, toppling
apartment blocks in Kahramanmaras, Hatay and Malatya. Rescue teams searched the rubble through the night
as aftershocks shook the region. Officials said at least 1,500 people were killed in Turkey and neighbouring
Syria, and thousands injured. President Erdogan declared seven days of national mourning."""
QUAKE_B = """Turkey earthquake: death toll rises above 2,300 as rescuers dig through rubble in Kahramanmaras and
Hatay. The 7.8 magnitude quake hit near Gaziantep before dawn on Monday, followed by a powerful aftershock.
Erdogan announced national mourning; Syria reports hundreds killed in Aleppo and Idlib. Apartment blocks
collapsed in Malatya and Adana."""
QUAKE_C = """Rescuers in southern Turkey and northern Syria race against time after the 7.8 earthquake near
Gaziantep. Buildings collapsed across Kahramanmaras, Hatay, Malatya and Diyarbakir; the toll passed 2,600.
Erdogan said 45 countries offered rescue teams, and aftershocks continued to shake the rubble."""
# Another earthquake the same week: shares the keywords, not the places.
QUAKE_OTHER = """A magnitude 6.1 earthquake struck western Nepal on Thursday, damaging houses in Jajarkot and
Rukum West. Police said 12 people were killed and dozens injured; rescue teams reached remote villages by
helicopter as aftershocks continued. Prime minister Dahal ordered relief for the families."""
# Two treason trials.
TRIAL_A = """The trial of former security chief Karim Masimov on charges of high treason opened in Astana.
Prosecutors accuse Masimov of an attempted seizure of power during the January unrest in Almaty; his
lawyers deny the treason charges. The court closed the hearing to the public."""
TRIAL_B = """In Minsk, opposition politician Maria Kolesnikova was sentenced to eleven years for conspiracy
and high treason, a court ruled on Monday. Her lawyer Lyudmila Kazak said the trial was held behind closed
doors and the treason charges were fabricated."""

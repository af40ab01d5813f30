"""Stopwords for topic terms: small built-in lists for Russian, Ukrainian, Hebrew and Swahili
(lemmas and common forms), English from scikit-learn's list, plus chat filler.

The lists are deliberately short: they remove the function words that otherwise name every
cluster (``the, and, что, это``), not content words.
"""

from __future__ import annotations

from functools import cache

RU = """
а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да даже
для до его ее её если есть еще ещё же за здесь и из или им их к как какой когда кто ли либо
мне может мой мы на над надо наш не него нее неё нет ни них но ну о об однако он она они оно
от очень по под после при про раз с сам свой себя со так также такой там тебя тем то тоже
той только том ты у уже хотя чего чей чем что чтобы чтоб чье эта эти это этот я мочь весь
который сейчас тут вообще просто вроде типа кстати значит вот-вот потом тогда всё нибудь
быть стать иметь сказать говорить знать хотеть делать ещё какой-то кто-то что-то где-то
всегда никто ничто ничего нас нам ним ней мной тобой вами ими этом этой этого этих тот те
того тех тому потому поэтому почему зачем сколько много мало больше меньше пока лишь
"""

UK = """
а або але б би був була були було бути в вам вас весь ви від вона вони воно вот все всі
де для до його її з за і й із як які який коли хто чи що щоб це цей ця ці той та те ті
ти тебе тобі у уже вже я ми ми нам нас ним них на над не ні но ну о об от по під після при
про раз с сам свій себе так також такий там тут тільки то теж хоча чого чим ще є мені мій
наш ваш їх їм нього неї або ж же аж ось от потім тоді дуже можна треба буде будуть може
якщо інший могти тим він один лише тобто навіть мати бута знати робити хтось нема можний
цього цієї цих тих свого своєї їхній котрий який-небудь щось десь завжди ніхто нічого
"""

HE = """
של את על זה לא עם גם כי אם מה הוא היא הם הן אני אתה את אנחנו אתם יש אין כל או אבל רק
עוד כבר זאת אז כמו היה היו יהיה אל מן עד לי לך לו לה לנו להם בו בה שם פה כן מי איך למה
מתי איפה הזה הזאת האלה אלה אותו אותה אותם שלי שלך שלו שלה שלנו שלהם ממש טוב בסדר אוקי
הכל כולם משום ללא צריך אפשר תודה
"""

SW = """
na ya wa kwa ni za la katika kama hii huo hiyo hilo yake wake zake lakini au pia sana
mimi wewe yeye sisi nyinyi wao hapa pale kuna ndiyo hapana tu bado sasa hivyo ama hata
huku huko iko juu wacha kwanza tuko
"""

CHAT = """
omitted media image video audio sticker deleted message null http https www com ok okay
lol yes yeah yep nope hahaha haha хаха ахах ага угу ок окей like know need good just
thank thanks guys does use got get want think really going make let did
"""


@cache
def stopwords() -> frozenset[str]:
    """Every built-in stopword (chats mix languages, so one set serves all of them)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = {w for text in (RU, UK, HE, SW, CHAT) for w in text.split()}
    words |= {w.replace("ё", "е") for w in words}
    return frozenset(words | set(ENGLISH_STOP_WORDS) | {"i", "im", "dont", "thats", "u"})

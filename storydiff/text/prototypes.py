"""Prototype sentences the zero-shot scorer compares each speech with.

Written by hand from the OCC definitions (Ortony, Clore & Collins 1988, ch. 5-8),
first person and spoken, half in a modern register and half in an older, stagey
one, so that both screenplays and early-modern verse land near them. They were
written before any line of the held-out plays (`corpus.HELD_OUT_PLAYS`) was read,
and paraphrase no line of those plays.
"""
from __future__ import annotations

from ..vocab import OCC_EMOTIONS, PAD

EMOTION_PROTOTYPES: dict[str, tuple[str, ...]] = {
    # approving of someone else's praiseworthy action
    "admiration": (
        "What a noble thing you did; I have never seen such courage.",
        "I admire him more than any man alive.",
        "She is the bravest and wisest of us all.",
        "You were magnificent out there.",
        "There is not a worthier gentleman in all the land.",
        "His valour shames us all; a braver soldier never lived.",
        "I look up to you; you are everything I want to be.",
        "How nobly she bore it; she is a marvel.",
    ),
    # disapproving of someone else's blameworthy action, and harmed by it
    "anger": (
        "How dare you do this to me!",
        "I am furious; get out of my sight!",
        "Villain, you shall pay for this!",
        "Damn you, I will tear you limb from limb!",
        "My blood boils; I could strike him down where he stands.",
        "You lied to me, and by God you will answer for it!",
        "Out of my way, or I'll break your neck!",
        "Rage consumes me; I will have vengeance!",
    ),
    # a hoped-for event did not happen
    "disappointment": (
        "I had hoped for so much, and it came to nothing.",
        "So he is not coming after all. I waited for nothing.",
        "All my hopes are dashed.",
        "I thought you would be different; you have let me down.",
        "It was not to be. I expected better.",
        "The prize I longed for is lost, and all my labour wasted.",
        "After all that waiting, this is all there is?",
        "I had set my heart on it, and now it is gone.",
    ),
    # an undesirable event: grief, sorrow, misery
    "distress": (
        "Oh, I am wretched; my heart is breaking.",
        "Alas, alas, what sorrow has befallen me!",
        "I can't bear it; everything is falling apart.",
        "Woe is me, I am undone and comfortless.",
        "My grief is more than I can carry.",
        "He is dead, and I am left alone in misery.",
        "I weep day and night; there is no end to this pain.",
        "This is the worst day of my life.",
    ),
    # the prospect of an undesirable event
    "fear": (
        "I am afraid of what is coming.",
        "I tremble; what if they find us?",
        "Please, don't hurt me!",
        "My heart quakes with dread; something terrible is near.",
        "I fear for my life; they will kill me.",
        "Hide me, for the love of God, they are coming!",
        "I'm scared. I don't want to die.",
        "What noise is that? I dare not look.",
    ),
    # a feared event has happened
    "fears-confirmed": (
        "It is as I feared: they are dead.",
        "I knew this would happen, and now it has.",
        "My worst fears have come true.",
        "I dreaded this day, and it has come at last.",
        "So it is true, what I feared all along.",
        "I told you they would betray us, and they have.",
        "The thing I most feared is upon me.",
        "Just as I suspected, all is lost.",
    ),
    # pleased about an event that is bad for someone else
    "gloating": (
        "Let him suffer; I am glad of his fall.",
        "Ha! Now he gets what he deserves.",
        "How sweet it is to see my enemy brought low.",
        "Look at him grovel. I love it.",
        "He thought himself so high, and now he lies in the dirt. Excellent!",
        "Serves you right, you fool; I laugh at your ruin.",
        "My rival is disgraced, and I rejoice.",
        "Now they weep, and I smile.",
    ),
    # approving of one's own action that turned out well
    "gratification": (
        "I did it, and it turned out just as I wished.",
        "My plan worked perfectly; I have won.",
        "I laboured hard, and now the reward is mine.",
        "Everything went my way, thanks to my own wits.",
        "I have achieved what I set out to do, and it feels good.",
        "My scheme has prospered beyond my hopes.",
        "All my work has paid off at last.",
        "I won the day by my own hand, and I am well pleased.",
    ),
    # approving of someone else's action that was good for oneself
    "gratitude": (
        "Thank you, I owe you everything.",
        "I am deeply grateful for your kindness.",
        "You saved my life; how can I ever repay you?",
        "I thank you with all my heart, good friend.",
        "Bless you for what you have done for me.",
        "I am forever in your debt.",
        "My thanks, my lord; your goodness has restored me.",
        "Thank you for standing by me when no one else would.",
    ),
    # pleased about an event that is good for someone else
    "happy-for": (
        "I am so glad for you; you deserve this happiness.",
        "Congratulations! I am delighted at your good fortune.",
        "Your joy is my joy; I rejoice to see you so blessed.",
        "I'm thrilled for you both.",
        "How happy I am that all has gone well for you.",
        "May you have joy of it; no one deserves it more.",
        "It does my heart good to see her so happy.",
        "Well done, my friend; your success delights me.",
    ),
    # disliking an unappealing person or thing
    "hate": (
        "I loathe the very sight of him.",
        "I hate you with every fibre of my being.",
        "He is a vile, detestable wretch, and I abhor him.",
        "I despise everything about that man.",
        "Let him be cursed; I wish him dead.",
        "I would spit upon his grave.",
        "My hatred of her will never die.",
        "There is nothing in this world I hate more than you.",
    ),
    # the prospect of a desirable event
    "hope": (
        "Perhaps tomorrow all will be well.",
        "I hope he will come back to us.",
        "There is still a chance; we may yet win.",
        "If fortune smiles, we shall be free again.",
        "I pray that she will live.",
        "Maybe this time things will be different.",
        "Courage; better days are coming.",
        "I trust that heaven will send us help.",
    ),
    # a desirable event
    "joy": (
        "Oh happy day! I am so full of joy.",
        "This is wonderful, I could dance!",
        "My heart leaps; never was I so merry.",
        "What delight! Everything is perfect.",
        "I'm so happy I could sing.",
        "Joy, joy, and nothing but joy!",
        "Let us laugh and feast and be glad!",
        "What glorious news! I am the happiest of all.",
    ),
    # liking an appealing person
    "love": (
        "I love you more than my own life.",
        "My dearest, my heart is yours forever.",
        "You are the sweetest thing in all the world to me.",
        "I adore her; I think of nothing else.",
        "Come here, my darling, let me hold you.",
        "My love for him is deeper than the sea.",
        "Sweet love, I cannot live without you.",
        "Kiss me, my own, my only love.",
    ),
    # displeased about an event that is bad for someone else
    "pity": (
        "Poor soul, how I pity her.",
        "I feel so sorry for him; he has suffered so much.",
        "Alas, poor fellow, he did not deserve this.",
        "My heart goes out to them.",
        "Poor child, you are cold and hungry. Come in.",
        "How sad for her, to lose everything.",
        "Have mercy on him; he is a wretched old man.",
        "The poor woman weeps, and I weep for her.",
    ),
    # approving of one's own praiseworthy action or standing
    "pride": (
        "I did this, and I am proud of it.",
        "No one else could have done what I did.",
        "I am the greatest of them all.",
        "My name shall be honoured forever for this deed.",
        "I stood my ground, and I am proud I did.",
        "Look what I have made with my own hands.",
        "I am of noble blood and I will not bow to any man.",
        "I have served with honour, and I hold my head high.",
    ),
    # a feared event did not happen
    "relief": (
        "Thank heaven, he is safe after all.",
        "Phew, that was close. We made it.",
        "Oh, thank God, it was only a dream.",
        "What a weight off my mind.",
        "I feared the worst, but all is well.",
        "At last I can breathe again; the danger is past.",
        "She lives! I thought we had lost her.",
        "Thank goodness, it was nothing.",
    ),
    # disapproving of one's own action that harmed someone
    "remorse": (
        "Forgive me, I have done a terrible wrong.",
        "I regret everything I did to you.",
        "What have I done? It is my fault he is dead.",
        "I repent, I repent with all my soul.",
        "If I could undo it, I would give my life.",
        "I wronged you cruelly, and I am sorry.",
        "My guilt torments me day and night.",
        "I was a fool and a villain; pardon me.",
    ),
    # disapproving of someone else's blameworthy action
    "reproach": (
        "Shame on you; you should not have done that.",
        "How could you treat her so? It was wicked of you.",
        "You ought to know better.",
        "Fie upon you, sir, this is unworthy of you.",
        "You have behaved disgracefully.",
        "You broke your word, and that was wrong.",
        "For shame! Is this how a gentleman behaves?",
        "You were cruel to him, and you know it.",
    ),
    # displeased about an event that is good for someone else (envy)
    "resentment": (
        "Why should he be rewarded and not me?",
        "It is not fair that she has everything.",
        "They praise him to the skies, and I am forgotten.",
        "I envy his good fortune; it should have been mine.",
        "He got the promotion I deserved.",
        "Must I stand by and watch him prosper?",
        "Everyone loves her, and I can't stand it.",
        "He is favoured above me, and it galls me.",
    ),
    # a hoped-for event did happen
    "satisfaction": (
        "At last, what I hoped for has come to pass.",
        "It is done, just as I wanted.",
        "Good. That is exactly what I expected.",
        "I am content; all has ended as it should.",
        "Everything has worked out as we planned.",
        "Finally, justice has been done.",
        "Well, that settles it. I am satisfied.",
        "So it has happened at last; I knew it would.",
    ),
    # disapproving of one's own blameworthy action
    "shame": (
        "I am ashamed; I cannot look you in the face.",
        "I blush to think of what I did.",
        "I am disgraced; everyone knows my shame.",
        "How could I have been so foolish? I am mortified.",
        "Don't look at me; I am so embarrassed.",
        "I have dishonoured my family's name.",
        "My cheeks burn with shame.",
        "Let me hide; I cannot bear to be seen.",
    ),
}

# Plain, informational or procedural speech: a calm line should sit nearer these than any emotion.
NEUTRAL_PROTOTYPES: tuple[str, ...] = (
    "Come, let us go in to supper.",
    "The horses are ready at the gate.",
    "He is at the market, sir.",
    "What time is it?",
    "Tell the duke I will attend him presently.",
    "I'll meet you at the station at six.",
    "Here is the letter you asked for.",
    "The ship sails for the north tomorrow morning.",
    "Go and fetch the steward.",
    "Where did you put the keys?",
    "My lord, the messenger is here.",
    "We came by the western road.",
    "Sit down. Let's go over the plan once more.",
    "She lives in the house by the river.",
    "I will do as you say, sir.",
    "Bring the papers to my chamber.",
    "Who is that at the door?",
    "The meeting is in the hall at noon.",
    "Yes, my lord.",
    "It is ten miles from here.",
)

# The two poles of each PAD dimension (Mehrabian 1996).
PAD_PROTOTYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pleasure": (
        ("I am delighted; everything is wonderful.", "What a lovely, happy time this is.",
         "All is well and I am glad.", "I feel good, content and at ease.", "This pleases me greatly."),
        ("This is miserable and painful.", "I feel awful; everything hurts.",
         "Wretched, wretched day.", "I am sick at heart and unhappy.", "This is horrible."),
    ),
    "arousal": (
        ("My heart is pounding, I can't keep still!", "Quick, quick, run, now!",
         "I'm burning up, wild and frantic!", "Ha! Come on, fight me!", "Help! Fire! Wake up, everyone!"),
        ("I am calm and drowsy; let me rest.", "Hush, all is quiet and still.",
         "I am weary and would sleep.", "Slowly, softly; there is no hurry.", "I am tired and dull."),
    ),
    "dominance": (
        ("I command you; you will obey me.", "Kneel before me.",
         "I am in control here, and I decide.", "Do as I say, or suffer for it.", "Nothing can stop me."),
        ("I am helpless; do with me what you will.", "Please, I beg you, have mercy.",
         "I am at your command, my lord.", "I can do nothing; it is out of my hands.",
         "I am small and weak and lost."),
    ),
}

assert tuple(EMOTION_PROTOTYPES) == OCC_EMOTIONS
assert tuple(PAD_PROTOTYPES) == PAD
